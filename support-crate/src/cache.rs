//! On-disk caches: where they live, and the append-only embedding cache.
//!
//! The embedding cache is one file per model: a header naming the model and
//! the embedding width, then records of (128-bit text hash, vector,
//! checksum). Records are appended as they are computed, so an interrupted
//! run keeps what it finished. On opening, a record that is cut short or
//! fails its checksum ends the usable part: the file is truncated there and
//! the rest is recomputed, never silently used.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::embed::Embeddings;

/// The project's cache directory: `SLM_CACHE_DIR`, else `data/cache` in the project.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("SLM_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/cache"),
    }
}

const MAGIC: &[u8; 8] = b"SLMEMB01";

/// FNV-1a over `bytes` from `basis` (64-bit).
fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A stable 128-bit hash of a text (two FNV-1a runs with different bases).
pub fn text_hash(text: &str) -> u128 {
    let a = fnv1a(text.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let b = fnv1a(text.as_bytes(), 0x6c62_272e_07bb_0142);
    ((a as u128) << 64) | b as u128
}

fn checksum(bytes: &[u8]) -> u32 {
    let h = fnv1a(bytes, 0xcbf2_9ce4_8422_2325);
    (h ^ (h >> 32)) as u32
}

/// Embeddings of texts for one model, persisted under a directory.
pub struct EmbeddingCache {
    path: PathBuf,
    dim: usize,
    vectors: HashMap<u128, Vec<f32>>,
    writer: BufWriter<File>,
    /// Records dropped when the file was opened (cut short or corrupt).
    pub dropped: usize,
}

impl EmbeddingCache {
    /// Open (or create) the cache of `model` with vectors of width `dim` in `dir`.
    pub fn open(dir: &Path, model: &str, dim: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let slug: String = model.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{slug}-{:016x}.emb", text_hash(model) as u64));
        let header = header(model, dim);
        let (vectors, good_len, dropped) = match File::open(&path) {
            Ok(file) => read_records(BufReader::new(file), &header, dim)
                .with_context(|| format!("reading the embedding cache {}", path.display()))?,
            Err(_) => (HashMap::new(), 0, 0),
        };
        if dropped > 0 || good_len == 0 {
            if dropped > 0 {
                tracing::warn!(path = %path.display(), dropped, "embedding cache was cut short or corrupt; recomputing what was lost");
            }
            rewrite_prefix(&path, &header, good_len)?;
        }
        let file =
            OpenOptions::new().append(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
        Ok(EmbeddingCache { path, dim, vectors, writer: BufWriter::new(file), dropped })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    pub fn get(&self, text: &str) -> Option<&[f32]> {
        self.vectors.get(&text_hash(text)).map(Vec::as_slice)
    }

    /// Add the embeddings of `texts` (row i of `emb` is text i) and flush them to disk.
    pub fn append(&mut self, texts: &[&str], emb: &Embeddings) -> Result<()> {
        assert_eq!(emb.dim, self.dim, "embedding width");
        for (i, t) in texts.iter().enumerate() {
            let hash = text_hash(t);
            if self.vectors.contains_key(&hash) {
                continue;
            }
            let mut record = hash.to_le_bytes().to_vec();
            for x in emb.row(i) {
                record.extend_from_slice(&x.to_le_bytes());
            }
            let sum = checksum(&record);
            record.extend_from_slice(&sum.to_le_bytes());
            self.writer.write_all(&record)?;
            self.vectors.insert(hash, emb.row(i).to_vec());
        }
        self.writer.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}

fn header(model: &str, dim: usize) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&(dim as u32).to_le_bytes());
    h.extend_from_slice(&(model.len() as u32).to_le_bytes());
    h.extend_from_slice(model.as_bytes());
    h
}

/// The valid records, the byte length of the valid prefix (0: header wrong,
/// start over) and the number of records dropped after it.
fn read_records(mut reader: impl Read, header: &[u8], dim: usize) -> Result<(HashMap<u128, Vec<f32>>, u64, usize)> {
    let mut found = vec![0u8; header.len()];
    if reader.read_exact(&mut found).is_err() || found != header {
        return Ok((HashMap::new(), 0, 0));
    }
    let record_len = 16 + 4 * dim + 4;
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?;
    let mut vectors = HashMap::new();
    let mut good = 0;
    for record in rest.chunks(record_len) {
        let body = &record[..record.len().saturating_sub(4)];
        if record.len() != record_len || checksum(body).to_le_bytes() != record[record_len - 4..] {
            break;
        }
        let hash = u128::from_le_bytes(record[..16].try_into().expect("16 bytes"));
        let v = body[16..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        vectors.insert(hash, v);
        good += 1;
    }
    let total = rest.len().div_ceil(record_len);
    Ok((vectors, (header.len() + good * record_len) as u64, total - good))
}

/// Keep the first `len` bytes of the file (a fresh header when `len` is 0).
fn rewrite_prefix(path: &Path, header: &[u8], len: u64) -> Result<()> {
    if len == 0 {
        std::fs::write(path, header).with_context(|| format!("writing {}", path.display()))
    } else {
        let file = OpenOptions::new().write(true).open(path).with_context(|| format!("opening {}", path.display()))?;
        file.set_len(len).with_context(|| format!("truncating {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emb(rows: &[[f32; 3]]) -> Embeddings {
        Embeddings { dim: 3, data: rows.iter().flatten().copied().collect() }
    }

    #[test]
    fn persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EmbeddingCache::open(dir.path(), "m/x", 3).unwrap();
        c.append(&["a", "b"], &emb(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).unwrap();
        drop(c);
        let c = EmbeddingCache::open(dir.path(), "m/x", 3).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("b"), Some(&[4.0, 5.0, 6.0][..]));
        assert_eq!(c.get("c"), None);
        assert_eq!(c.dropped, 0);
        // Another model has its own cache.
        assert!(EmbeddingCache::open(dir.path(), "m/y", 3).unwrap().is_empty());
    }

    #[test]
    fn truncated_and_corrupt_files_are_detected_and_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EmbeddingCache::open(dir.path(), "m", 3).unwrap();
        c.append(&["a", "b", "c"], &emb(&[[1.0; 3], [2.0; 3], [3.0; 3]])).unwrap();
        let path = c.path().to_path_buf();
        drop(c);

        // Cut the last record short, as an interrupted write would.
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 5).unwrap();
        let c = EmbeddingCache::open(dir.path(), "m", 3).unwrap();
        assert_eq!((c.len(), c.dropped), (2, 1));
        assert_eq!(c.get("c"), None);
        drop(c);

        // Flip a byte inside the first record's vector: it and everything after are dropped.
        let mut bytes = std::fs::read(&path).unwrap();
        let first_vector = header("m", 3).len() + 16;
        bytes[first_vector] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let mut c = EmbeddingCache::open(dir.path(), "m", 3).unwrap();
        assert_eq!((c.len(), c.dropped), (0, 2));
        c.append(&["a"], &emb(&[[9.0; 3]])).unwrap();
        drop(c);
        assert_eq!(EmbeddingCache::open(dir.path(), "m", 3).unwrap().get("a"), Some(&[9.0; 3][..]));

        // A file for another width (or garbage) is started over.
        std::fs::write(&path, b"garbage").unwrap();
        assert!(EmbeddingCache::open(dir.path(), "m", 3).unwrap().is_empty());
    }
}
