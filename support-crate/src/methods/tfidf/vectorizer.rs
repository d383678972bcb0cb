//! TF-IDF over word unigrams and bigrams, as scikit-learn's
//! `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=...)`:
//! sublinear term frequency, smoothed idf, L2-normalised sparse rows.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Tokens as scikit-learn's default `token_pattern` `(?u)\b\w\w+\b` finds
/// them: runs of two or more word characters, lower-cased.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = 0;
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            if c.is_ascii() {
                current.push(c.to_ascii_lowercase());
            } else {
                current.extend(c.to_lowercase());
            }
            chars += 1;
        } else {
            if chars >= 2 {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
            chars = 0;
        }
    }
    if chars >= 2 {
        out.push(current);
    }
    out
}

/// Unigrams and bigrams of a text.
fn ngrams(text: &str) -> Vec<String> {
    let w = words(text);
    let mut out = Vec::with_capacity(2 * w.len());
    out.extend(w.windows(2).map(|p| format!("{} {}", p[0], p[1])));
    out.extend(w);
    out
}

/// A fitted TF-IDF vocabulary.
pub struct Tfidf {
    vocabulary: FxHashMap<String, u32>,
    idf: Vec<f32>,
}

/// Sparse rows: (column, value) pairs, L2-normalised.
pub type SparseRow = Vec<(u32, f32)>;

impl Tfidf {
    /// The vocabulary and the rows of the texts it was fitted on, each text
    /// tokenised once (scikit-learn's `fit_transform`).
    pub fn fit_transform(texts: &[&str], min_df: usize) -> (Self, Vec<SparseRow>) {
        let grams: Vec<Vec<String>> = texts.par_iter().map(|t| ngrams(t)).collect();
        // Document frequency, and the last text counted (a text counts a term once).
        let mut df: FxHashMap<&str, (usize, usize)> = FxHashMap::default();
        for (i, text) in grams.iter().enumerate() {
            for g in text {
                let (count, last) = df.entry(g.as_str()).or_insert((0, usize::MAX));
                if *last != i {
                    *count += 1;
                    *last = i;
                }
            }
        }
        let mut terms: Vec<(&str, usize)> =
            df.into_iter().filter(|(_, (d, _))| *d >= min_df).map(|(t, (d, _))| (t, d)).collect();
        terms.sort_unstable();
        let n = texts.len() as f64;
        let idf = terms.iter().map(|(_, d)| (((1.0 + n) / (1.0 + *d as f64)).ln() + 1.0) as f32).collect();
        let vocabulary = terms.into_iter().enumerate().map(|(i, (t, _))| (t.to_string(), i as u32)).collect();
        let tfidf = Tfidf { vocabulary, idf };
        let rows = grams.par_iter().map(|text| tfidf.row(text)).collect();
        (tfidf, rows)
    }

    pub fn len(&self) -> usize {
        self.idf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    pub fn transform(&self, texts: &[&str]) -> Vec<SparseRow> {
        texts.par_iter().map(|t| self.row(&ngrams(t))).collect()
    }

    /// One text's row: sublinear tf times idf over the known terms, L2-normalised.
    fn row(&self, grams: &[String]) -> SparseRow {
        let mut ids: Vec<u32> = grams.iter().filter_map(|g| self.vocabulary.get(g.as_str()).copied()).collect();
        ids.sort_unstable();
        let mut row: SparseRow = ids
            .chunk_by(|a, b| a == b)
            .map(|run| (run[0], (1.0 + (run.len() as f32).ln()) * self.idf[run[0] as usize]))
            .collect();
        let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_follow_scikit_learns_token_pattern() {
        assert_eq!(
            words("Wall St. Bears' claw-back: 2004, a I x9"),
            vec!["wall", "st", "bears", "claw", "back", "2004", "x9"]
        );
    }

    #[test]
    fn tfidf_rows_are_unit_length_with_sublinear_tf_and_smoothed_idf() {
        let texts = ["apple apple banana", "banana cherry", "cherry cherry cherry"];
        let (tfidf, rows) = Tfidf::fit_transform(&texts, 1);
        assert_eq!(tfidf.transform(&texts), rows, "fit_transform and transform agree");
        for r in &rows {
            assert!((r.iter().map(|(_, v)| v * v).sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // Row 0: apple tf 1+ln2, idf ln(4/2)+1; banana tf 1, idf ln(4/3)+1 (and the bigrams).
        let id = |t: &str| tfidf.vocabulary[t];
        let get = |r: &SparseRow, j: u32| r.iter().find(|(k, _)| *k == j).unwrap().1;
        let ratio = get(&rows[0], id("apple")) / get(&rows[0], id("banana"));
        let expected = (1.0 + 2f32.ln()) * (2f32.ln() + 1.0) / ((4.0f32 / 3.0).ln() + 1.0);
        assert!((ratio - expected).abs() < 1e-5, "{ratio} vs {expected}");
    }
}
