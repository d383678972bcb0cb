//! Which test items a curve's points were scored on and what each point
//! answered, stored compactly in `curve.json`, so that any two points can be
//! compared item by item ([`crate::paired`]) long after the run: the
//! cheap arms answer the whole test split, the costly ones a seeded sample
//! of it, and two points are paired on the items both answered.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::data::Example;

/// One answer per item (None: no valid answer), in the rows' order. Stored
/// as one character per item (`0-9a-zA-Z`, `-` for none) up to 62 classes,
/// else as a comma list starting with a comma.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answers(pub Vec<Option<usize>>);

const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

impl Serialize for Answers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let compact = self.0.iter().all(|a| a.is_none_or(|c| c < DIGITS.len()));
        let text: String = if compact {
            self.0.iter().map(|a| a.map_or('-', |c| DIGITS[c] as char)).collect()
        } else {
            self.0.iter().map(|a| a.map_or(",-".to_string(), |c| format!(",{c}"))).collect()
        };
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Answers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = |what: &str| serde::de::Error::custom(format!("answers: {what:?} is not a class"));
        let answers = if let Some(list) = text.strip_prefix(',') {
            list.split(',')
                .map(|a| if a == "-" { Ok(None) } else { a.parse().map(Some).map_err(|_| bad(a)) })
                .collect::<Result<_, _>>()?
        } else {
            text.bytes()
                .map(|b| match b {
                    b'-' => Ok(None),
                    _ => DIGITS.iter().position(|&d| d == b).map(Some).ok_or_else(|| bad(&(b as char).to_string())),
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Answers(answers))
    }
}

/// The test items of a curve: the whole split and the sample, each by row
/// (`Example::index`), ascending.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScoredItems {
    #[serde(with = "row_ranges")]
    pub rows: Vec<usize>,
    /// The gold class of each of `rows`.
    pub labels: Answers,
    #[serde(with = "row_ranges")]
    pub sample_rows: Vec<usize>,
}

impl ScoredItems {
    pub fn of(test: &[Example], sample: &[Example]) -> Self {
        let mut all: Vec<&Example> = test.iter().collect();
        all.sort_by_key(|e| e.index);
        let mut sample_rows: Vec<usize> = sample.iter().map(|e| e.index).collect();
        sample_rows.sort_unstable();
        ScoredItems {
            rows: all.iter().map(|e| e.index).collect(),
            labels: Answers(all.iter().map(|e| Some(e.label)).collect()),
            sample_rows,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// `answers` (one per item of `test`, in its order) in row order: what a point stores.
    pub fn answers_of(test: &[Example], answers: &[Option<usize>]) -> Answers {
        let mut by_row: Vec<(usize, Option<usize>)> =
            test.iter().map(|e| e.index).zip(answers.iter().copied()).collect();
        by_row.sort_by_key(|&(row, _)| row);
        Answers(by_row.into_iter().map(|(_, a)| a).collect())
    }

    /// The rows a point's answers are for: the whole split or the sample.
    fn rows_of(&self, answers: &Answers) -> Option<&[usize]> {
        match answers.0.len() {
            n if n == self.rows.len() => Some(&self.rows),
            n if n == self.sample_rows.len() => Some(&self.sample_rows),
            _ => None,
        }
    }

    /// Each row's gold class.
    fn gold(&self) -> HashMap<usize, Option<usize>> {
        self.rows.iter().copied().zip(self.labels.0.iter().copied()).collect()
    }

    /// Whether a point got each of its items right (in row order); None
    /// when its items are unknown.
    pub fn correct(&self, answers: &Answers) -> Option<Vec<bool>> {
        let gold = self.gold();
        let rows = self.rows_of(answers)?;
        rows.iter()
            .zip(&answers.0)
            .map(|(row, answer)| gold.get(row).map(|truth| truth.is_some() && *answer == *truth))
            .collect()
    }

    /// Whether each point got each item right, on the items both answered
    /// (in row order); None when either point's items are unknown.
    pub fn correct_on_common(&self, first: &Answers, second: &Answers) -> Option<(Vec<bool>, Vec<bool>)> {
        let both = self.answered_by_both(first, second)?;
        Some(both.iter().map(|item| (item.first == Some(item.truth), item.second == Some(item.truth))).unzip())
    }

    /// How many of the items both answered got the same answer from both
    /// (the same class, or none from either); None when either point's items
    /// are unknown.
    pub fn same_answers_on_common(&self, first: &Answers, second: &Answers) -> Option<usize> {
        Some(self.answered_by_both(first, second)?.iter().filter(|item| item.first == item.second).count())
    }

    /// Each item both points answered and whose gold class is known, in row order.
    fn answered_by_both(&self, first: &Answers, second: &Answers) -> Option<Vec<AnsweredByBoth>> {
        let gold = self.gold();
        let (rows_a, rows_b) = (self.rows_of(first)?, self.rows_of(second)?);
        let at_b: HashMap<usize, Option<usize>> = rows_b.iter().copied().zip(second.0.iter().copied()).collect();
        Some(
            rows_a
                .iter()
                .zip(&first.0)
                .filter_map(|(row, &answer)| match (at_b.get(row), gold.get(row)) {
                    (Some(&other), Some(&Some(truth))) => Some(AnsweredByBoth { truth, first: answer, second: other }),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// One item's gold class and two points' answers to it.
struct AnsweredByBoth {
    truth: usize,
    first: Option<usize>,
    second: Option<usize>,
}

/// Ascending rows as ranges: "0-7599", "3,8-10".
mod row_ranges {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(rows: &[usize], s: S) -> Result<S::Ok, S::Error> {
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < rows.len() {
            let mut j = i;
            while j + 1 < rows.len() && rows[j + 1] == rows[j] + 1 {
                j += 1;
            }
            parts.push(if j == i { rows[i].to_string() } else { format!("{}-{}", rows[i], rows[j]) });
            i = j + 1;
        }
        s.serialize_str(&parts.join(","))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
        let text = String::deserialize(d)?;
        let mut rows = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let number =
                |n: &str| n.parse::<usize>().map_err(|_| serde::de::Error::custom(format!("rows: bad {part:?}")));
            match part.split_once('-') {
                Some((from, to)) => rows.extend(number(from)?..=number(to)?),
                None => rows.push(number(part)?),
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(index: usize, label: usize) -> Example {
        Example { index, label, title: String::new(), body: String::new(), text: format!("t{index}") }
    }

    #[test]
    fn answers_and_rows_round_trip_through_json() {
        for answers in [Answers(vec![Some(0), None, Some(3), Some(61)]), Answers(vec![Some(62), None, Some(7)])] {
            let json = serde_json::to_string(&answers).unwrap();
            assert_eq!(serde_json::from_str::<Answers>(&json).unwrap(), answers, "{json}");
        }
        assert_eq!(serde_json::to_string(&Answers(vec![Some(0), None, Some(11)])).unwrap(), "\"0-b\"");
        let test: Vec<Example> = [5, 0, 1, 2, 9].iter().map(|&i| example(i, i % 4)).collect();
        let items = ScoredItems::of(&test, &test[..2]);
        let json = serde_json::to_string(&items).unwrap();
        assert!(json.contains("\"0-2,5,9\""), "{json}");
        assert_eq!(serde_json::from_str::<ScoredItems>(&json).unwrap(), items);
        assert!(serde_json::from_str::<Answers>("\"0?\"").is_err());
    }

    #[test]
    fn two_points_are_paired_on_the_items_both_answered() {
        let test: Vec<Example> = (0..6).rev().map(|i| example(i, i % 2)).collect(); // rows 5..0
        let sample = vec![test[1].clone(), test[4].clone()]; // rows 4 and 1
        let items = ScoredItems::of(&test, &sample);
        // The whole split answered in test order (rows 5,4,...,0): right on every even row.
        let all = ScoredItems::answers_of(
            &test,
            &test.iter().map(|e| Some(if e.index % 2 == 0 { e.label } else { 1 - e.label })).collect::<Vec<_>>(),
        );
        // The sample answered in its own order (rows 4 then 1): wrong on 4, no answer on 1.
        let sampled = ScoredItems::answers_of(&sample, &[Some(1), None]);
        let (a, b) = items.correct_on_common(&all, &sampled).unwrap();
        assert_eq!(a, vec![false, true]); // rows 1, 4
        assert_eq!(b, vec![false, false]);
        assert!(items.correct_on_common(&all, &Answers(vec![Some(0); 3])).is_none());
    }
}
