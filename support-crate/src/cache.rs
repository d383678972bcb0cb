//! One append-only on-disk cache, used for sentence embeddings and LLM
//! answers: anything that is slow or costs money to compute is written as
//! soon as it exists, so an interrupted run keeps what it finished and a
//! re-run pays for nothing twice.
//!
//! A file holds a header naming what it caches, then records:
//!
//! ```text
//! SYNC (4 bytes) | payload length u32 | key u128 | payload | xxh3-64 of (length, key, payload)
//! ```
//!
//! Keys are 128-bit xxh3 hashes of what determines the value (a text, a
//! prompt and its parameters). On opening, every record is checked: one cut
//! short or corrupted (a failed checksum, including a payload edited by
//! hand) is dropped on its own and the reader resynchronises on the next
//! `SYNC` mark, so the records after it survive. The file is then rewritten
//! without the damage (atomically: a temporary file renamed over it) and
//! the dropped entries are computed again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

const MAGIC: &[u8; 8] = b"SLMCACH2";
const SYNC: [u8; 4] = [0xA5, b'R', b'E', b'C'];
/// SYNC, length, key.
const RECORD_HEAD: usize = 4 + 4 + 16;
const RECORD_TAIL: usize = 8;

/// The key of `bytes`: a 128-bit xxh3 hash.
pub fn key(bytes: &[u8]) -> u128 {
    xxh3_128(bytes)
}

/// The key of a text.
pub fn text_key(text: &str) -> u128 {
    key(text.as_bytes())
}

/// The key of a sequence of parts (each length-prefixed, so `["ab", "c"]`
/// and `["a", "bc"]` differ): the one way a cache key is made of many things.
pub fn content_key<I, P>(parts: I) -> u128
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in parts {
        let part = part.as_ref();
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.digest128()
}

/// An append-only map from keys to byte strings, persisted in one file.
pub struct RecordCache {
    path: PathBuf,
    entries: HashMap<u128, Vec<u8>>,
    writer: BufWriter<File>,
    /// Damaged stretches (cut short or failing their checksum) dropped when the file was opened.
    pub dropped: usize,
}

impl RecordCache {
    /// Opens (or creates) the cache at `path` for `namespace` (what it
    /// caches, e.g. the model and its settings). A file made for another
    /// namespace, or that is no cache file, is started over.
    pub fn open(path: &Path, namespace: &str) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let header = header(namespace);
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("reading the cache {}", path.display())),
        };
        let (records, dropped) = if bytes.starts_with(&header) { parse(&bytes[header.len()..]) } else { (vec![], 0) };
        if dropped > 0 {
            tracing::warn!(path = %path.display(), dropped, "cache had damaged records; dropped them, the rest survive");
        }
        if dropped > 0 || !bytes.starts_with(&header) {
            rewrite(path, &header, &records)?;
        }
        let entries = records.into_iter().map(|(k, v)| (k, v.to_vec())).collect();
        let file = OpenOptions::new().append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(RecordCache { path: path.to_path_buf(), entries, writer: BufWriter::new(file), dropped })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: u128) -> Option<&[u8]> {
        self.entries.get(&key).map(Vec::as_slice)
    }

    /// Adds (or replaces) an entry; buffered until [`RecordCache::flush`].
    pub fn insert(&mut self, key: u128, payload: &[u8]) -> Result<()> {
        self.writer.write_all(&encode(key, payload)).with_context(|| format!("writing {}", self.path.display()))?;
        self.entries.insert(key, payload.to_vec());
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush().with_context(|| format!("writing {}", self.path.display()))
    }

    /// A JSON entry, `None` when absent or no longer of type `T`.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, key: u128) -> Option<T> {
        serde_json::from_slice(self.get(key)?).ok()
    }

    /// Adds a JSON entry and writes it to disk at once.
    pub fn insert_json<T: serde::Serialize>(&mut self, key: u128, value: &T) -> Result<()> {
        self.insert(key, &serde_json::to_vec(value)?)?;
        self.flush()
    }
}

fn header(namespace: &str) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&(namespace.len() as u32).to_le_bytes());
    h.extend_from_slice(namespace.as_bytes());
    h
}

fn encode(key: u128, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(RECORD_HEAD + payload.len() + RECORD_TAIL);
    record.extend_from_slice(&SYNC);
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&key.to_le_bytes());
    record.extend_from_slice(payload);
    let sum = xxh3_64(&record[SYNC.len()..]);
    record.extend_from_slice(&sum.to_le_bytes());
    record
}

/// The record starting at `at`, if it is whole and its checksum holds: (key, payload, end).
fn record_at(bytes: &[u8], at: usize) -> Option<(u128, &[u8], usize)> {
    let head = bytes.get(at..at + RECORD_HEAD)?;
    if head[..4] != SYNC {
        return None;
    }
    let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
    let end = at.checked_add(RECORD_HEAD + len + RECORD_TAIL)?;
    let body = bytes.get(at + SYNC.len()..end - RECORD_TAIL)?;
    let sum = u64::from_le_bytes(bytes.get(end - RECORD_TAIL..end)?.try_into().ok()?);
    if xxh3_64(body) != sum {
        return None;
    }
    let key = u128::from_le_bytes(head[8..24].try_into().ok()?);
    Some((key, &bytes[at + RECORD_HEAD..end - RECORD_TAIL], end))
}

/// The sound records in file order, and how many damaged stretches lay between them.
fn parse(bytes: &[u8]) -> (Vec<(u128, &[u8])>, usize) {
    let (mut records, mut dropped, mut at, mut in_damage) = (Vec::new(), 0, 0, false);
    while at < bytes.len() {
        match record_at(bytes, at) {
            Some((key, payload, end)) => {
                records.push((key, payload));
                at = end;
                in_damage = false;
            }
            None => {
                dropped += usize::from(!in_damage);
                in_damage = true;
                // Resynchronise on the next SYNC mark.
                at = bytes[at + 1..].windows(SYNC.len()).position(|w| w == SYNC).map_or(bytes.len(), |p| at + 1 + p);
            }
        }
    }
    (records, dropped)
}

/// Replaces the file with the header and `records`, atomically.
fn rewrite(path: &Path, header: &[u8], records: &[(u128, &[u8])]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut w = BufWriter::new(File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
        w.write_all(header)?;
        for (key, payload) in records {
            w.write_all(&encode(*key, payload))?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(dir: &Path, entries: &[(&str, &str)]) -> PathBuf {
        let path = dir.join("c.cache");
        let mut c = RecordCache::open(&path, "test").unwrap();
        for (k, v) in entries {
            c.insert(text_key(k), v.as_bytes()).unwrap();
        }
        c.flush().unwrap();
        path
    }

    fn value(c: &RecordCache, k: &str) -> Option<String> {
        c.get(text_key(k)).map(|v| String::from_utf8(v.to_vec()).unwrap())
    }

    #[test]
    fn persists_replaces_and_separates_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled(dir.path(), &[("a", "1"), ("b", "2"), ("a", "3")]);
        let c = RecordCache::open(&path, "test").unwrap();
        assert_eq!((c.len(), c.dropped), (2, 0));
        assert_eq!(value(&c, "a").as_deref(), Some("3"));
        assert_eq!(value(&c, "c"), None);
        drop(c);
        // Another namespace (another model, other settings) starts over.
        assert!(RecordCache::open(&path, "other").unwrap().is_empty());
    }

    #[test]
    fn a_record_cut_short_is_dropped_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled(dir.path(), &[("a", "1"), ("b", "2"), ("c", "3")]);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 5).unwrap();
        let mut c = RecordCache::open(&path, "test").unwrap();
        assert_eq!((c.len(), c.dropped), (2, 1));
        assert_eq!(value(&c, "c"), None);
        c.insert(text_key("c"), b"4").unwrap();
        c.flush().unwrap();
        drop(c);
        let c = RecordCache::open(&path, "test").unwrap();
        assert_eq!((c.len(), c.dropped, value(&c, "c").as_deref()), (3, 0, Some("4")));
    }

    #[test]
    fn a_corrupted_or_tampered_record_is_dropped_and_later_ones_survive() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<(String, String)> = (0..10).map(|i| (format!("k{i}"), format!("{{\"label\":{i}}}"))).collect();
        let refs: Vec<(&str, &str)> = entries.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let path = filled(dir.path(), &refs);
        let mut bytes = std::fs::read(&path).unwrap();
        // Change the label of record 3 to another valid value: the checksum catches it.
        let at = bytes.windows(11).position(|w| w == b"{\"label\":3}").unwrap();
        bytes[at + 9] = b'7';
        // And flip a byte in the length field of record 6.
        let at6 = bytes.windows(11).position(|w| w == b"{\"label\":6}").unwrap();
        bytes[at6 - 20] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let c = RecordCache::open(&path, "test").unwrap();
        assert_eq!((c.len(), c.dropped), (8, 2));
        assert_eq!(value(&c, "k3"), None);
        assert_eq!(value(&c, "k6"), None);
        assert_eq!(value(&c, "k9").as_deref(), Some("{\"label\":9}"));
        drop(c);
        // The damage was rewritten away.
        assert_eq!(RecordCache::open(&path, "test").unwrap().dropped, 0);
        // Garbage is started over.
        std::fs::write(&path, b"garbage").unwrap();
        assert!(RecordCache::open(&path, "test").unwrap().is_empty());
    }

    #[test]
    fn json_entries_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.cache");
        let mut c = RecordCache::open(&path, "json").unwrap();
        c.insert_json(key(b"q"), &vec![1.5f32, 2.0]).unwrap();
        drop(c);
        let c = RecordCache::open(&path, "json").unwrap();
        assert_eq!(c.get_json::<Vec<f32>>(key(b"q")), Some(vec![1.5, 2.0]));
        assert_eq!(c.get_json::<String>(key(b"q")), None);
    }
}
