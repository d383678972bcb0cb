//! TF-IDF over word unigrams and bigrams, as scikit-learn's
//! `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=...)`:
//! sublinear term frequency, smoothed idf, L2-normalised sparse rows.

use std::collections::HashMap;

use rayon::prelude::*;

/// Tokens as scikit-learn's default `token_pattern` `(?u)\b\w\w+\b` finds
/// them: runs of two or more word characters, lower-cased.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            current.extend(c.to_lowercase());
        } else {
            if current.chars().count() >= 2 {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    if current.chars().count() >= 2 {
        out.push(current);
    }
    out
}

/// Unigrams and bigrams of a text.
fn ngrams(text: &str) -> Vec<String> {
    let w = words(text);
    let mut out = w.clone();
    out.extend(w.windows(2).map(|p| format!("{} {}", p[0], p[1])));
    out
}

/// A fitted TF-IDF vocabulary.
pub struct Tfidf {
    vocabulary: HashMap<String, u32>,
    idf: Vec<f32>,
}

/// Sparse rows: (column, value) pairs, L2-normalised.
pub type SparseRow = Vec<(u32, f32)>;

impl Tfidf {
    pub fn fit(texts: &[&str], min_df: usize) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        for grams in texts.par_iter().map(|t| ngrams(t)).collect::<Vec<_>>() {
            let mut grams = grams;
            grams.sort_unstable();
            grams.dedup();
            for g in grams {
                *df.entry(g).or_default() += 1;
            }
        }
        let mut terms: Vec<(String, usize)> = df.into_iter().filter(|(_, d)| *d >= min_df).collect();
        terms.sort_unstable();
        let n = texts.len() as f64;
        let idf = terms.iter().map(|(_, d)| (((1.0 + n) / (1.0 + *d as f64)).ln() + 1.0) as f32).collect();
        let vocabulary = terms.into_iter().enumerate().map(|(i, (t, _))| (t, i as u32)).collect();
        Tfidf { vocabulary, idf }
    }

    pub fn len(&self) -> usize {
        self.idf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    pub fn transform(&self, texts: &[&str]) -> Vec<SparseRow> {
        texts
            .par_iter()
            .map(|t| {
                let mut counts: HashMap<u32, f32> = HashMap::new();
                for g in ngrams(t) {
                    if let Some(&j) = self.vocabulary.get(&g) {
                        *counts.entry(j).or_default() += 1.0;
                    }
                }
                let mut row: SparseRow =
                    counts.into_iter().map(|(j, c)| (j, (1.0 + c.ln()) * self.idf[j as usize])).collect();
                row.sort_unstable_by_key(|&(j, _)| j);
                let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
                if norm > 0.0 {
                    row.iter_mut().for_each(|(_, v)| *v /= norm);
                }
                row
            })
            .collect()
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
        let tfidf = Tfidf::fit(&texts, 1);
        let rows = tfidf.transform(&texts);
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
