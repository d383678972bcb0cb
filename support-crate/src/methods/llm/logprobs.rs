//! Label scores from a server's `logprobs`: what an OpenAI-compatible server
//! returns instead of the whole-label log-probabilities the embedded model
//! computes.
//!
//! A server gives, for each token it generated, that token's log-probability
//! and the `top_logprobs` most likely tokens at its position (20 at most on
//! OpenAI's API). It cannot score a continuation it did not generate, so each
//! label's probability is read off the tree of token paths the response
//! shows: every listed token at a position inside the answer's label value
//! that starts a label (given the generated tokens before it) adds the
//! probability of the path to it, its continuation taken as certain; the
//! generated path adds its own probability to the label it spells. A token
//! that starts several labels (`S` for "Sports" and "Sci/Tech") shares its
//! mass equally among them. A label no listed token leads to gets the bound
//! an unlisted token has: the least listed probability where it left the
//! path.
//!
//! For a model that is sure of its answer's first token (most large models)
//! this is the label distribution; for a small model whose mass is spread
//! over fragments it is an approximation, and the run reports how often the
//! scores and the server's own constrained answer agree.

use serde::{Deserialize, Serialize};

/// One generated token with its log-probability and the most likely tokens at its position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub top: Vec<(String, f32)>,
}

/// Reads `choices[0].logprobs.content` of a chat completion (`None` when the
/// server sent none, or sent it in another shape).
pub fn parse(choice: &serde_json::Value) -> Option<Vec<TokenLogprob>> {
    let content = choice.get("logprobs")?.get("content")?.as_array()?;
    content
        .iter()
        .map(|t| {
            let top = t
                .get("top_logprobs")
                .and_then(|v| v.as_array())
                .map(|top| {
                    top.iter()
                        .filter_map(|c| {
                            Some((c.get("token")?.as_str()?.to_string(), c.get("logprob")?.as_f64()? as f32))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(TokenLogprob {
                token: t.get("token")?.as_str()?.to_string(),
                logprob: t.get("logprob")?.as_f64()? as f32,
                top,
            })
        })
        .collect()
}

/// Why a response's logprobs gave no label scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoScores {
    /// The tokens do not spell the answer's text.
    TokensDoNotSpellContent,
    /// No `"label": "` in the answer.
    NoLabelValue,
    /// No listed token at any position leads to a label.
    NothingListed,
}

/// The log-probability of each label's answer (see the module doc), from an
/// answer's `content` and its tokens' logprobs.
pub fn label_log_probs(
    content: &str,
    tokens: &[TokenLogprob],
    labels: &[String],
) -> std::result::Result<Vec<f32>, NoScores> {
    if tokens.iter().map(|t| t.token.as_str()).collect::<String>() != content {
        return Err(NoScores::TokensDoNotSpellContent);
    }
    let value_start = label_value_start(content).ok_or(NoScores::NoLabelValue)?;
    // Probability mass reaching each label, and where each label left the path (for its bound).
    let mut mass = vec![0f64; labels.len()];
    let mut bound = vec![f64::NEG_INFINITY; labels.len()];
    let mut path = 0f64; // log-probability of the generated tokens inside the value so far
    let mut spelled = String::new(); // the value's text the path has generated so far
    let mut offset = 0;
    let mut alive: Vec<bool> = vec![true; labels.len()];
    let mut listed_any = false;
    for t in tokens {
        let (start, end) = (offset, offset + t.token.len());
        offset = end;
        if end <= value_start {
            continue;
        }
        // The part of this position's tokens before the value (a token such as `"World`).
        let before = &content[start..value_start.max(start)];
        let least = t.top.iter().map(|(_, l)| f64::from(*l)).fold(f64::INFINITY, f64::min);
        for (candidate, logprob) in &t.top {
            if candidate == &t.token {
                continue;
            }
            let Some(rest) = candidate.strip_prefix(before).filter(|r| !r.is_empty()) else { continue };
            let reached = format!("{spelled}{rest}");
            let leads: Vec<usize> =
                (0..labels.len()).filter(|&l| alive[l] && starts_label(&reached, &labels[l])).collect();
            for &l in &leads {
                mass[l] += (path + f64::from(*logprob)).exp() / leads.len() as f64;
                listed_any = true;
            }
        }
        spelled.push_str(&t.token[before.len()..]);
        path += f64::from(t.logprob);
        for (l, label) in labels.iter().enumerate() {
            if alive[l] && !starts_label(&spelled, label) {
                alive[l] = false;
                bound[l] = path - f64::from(t.logprob) + least;
            }
        }
        if let Some(l) = (0..labels.len()).find(|&l| alive[l] && closes(&spelled, &labels[l])) {
            mass[l] += path.exp();
            listed_any = true;
            break;
        }
        if !alive.iter().any(|&a| a) {
            break;
        }
    }
    if !listed_any {
        return Err(NoScores::NothingListed);
    }
    Ok(mass.iter().zip(&bound).map(|(&m, &b)| if m > 0.0 { m.ln() as f32 } else { b.max(-1e4) as f32 }).collect())
}

/// Where the string value of the answer's `"label"` key starts.
fn label_value_start(content: &str) -> Option<usize> {
    let key = content.find("\"label\"")? + "\"label\"".len();
    let rest = &content[key..];
    let colon = rest.find(|c: char| !c.is_whitespace()).filter(|&i| rest[i..].starts_with(':'))?;
    let after = &rest[colon + 1..];
    let quote = after.find(|c: char| !c.is_whitespace()).filter(|&i| after[i..].starts_with('"'))?;
    Some(key + colon + 1 + quote + 1)
}

/// Whether text generated from a value's start begins `label`: a proper part
/// of it, or all of it followed by the closing quote.
fn starts_label(text: &str, label: &str) -> bool {
    (!text.is_empty() && label.starts_with(text)) || closes(text, label)
}

/// Whether `text` is all of `label` and then the string's closing quote.
fn closes(text: &str, label: &str) -> bool {
    text.strip_prefix(label).is_some_and(|rest| rest.starts_with('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["World", "Sports", "Business", "Sci/Tech"].map(String::from).to_vec()
    }

    fn token(token: &str, logprob: f32, top: &[(&str, f32)]) -> TokenLogprob {
        TokenLogprob { token: token.into(), logprob, top: top.iter().map(|(t, l)| (t.to_string(), *l)).collect() }
    }

    /// As llama.cpp's server answered for SmolLM2 (shortened lists): the
    /// grammar spells "Sports" as `S` `port` `s`.
    fn spelled_in_fragments() -> Vec<TokenLogprob> {
        vec![
            token("{", -6.9, &[("The", -2.3)]),
            token(" \"", -0.5, &[(" \"", -0.5)]),
            token("label", -0.3, &[("label", -0.3)]),
            token("\":", -0.3, &[("\":", -0.3)]),
            token(" \"", -0.6, &[(" \"", -0.6), (" {", -2.6)]),
            token("S", -1.0, &[("S", -1.0), ("B", -4.0), ("Sports", -4.5), ("W", -5.0), ("Sh", -5.5)]),
            token("port", -0.5, &[("port", -0.5), ("ci", -2.0), ("occer", -3.0)]),
            token("s", -0.1, &[("s", -0.1), ("ing", -3.0)]),
            token("\"}", -0.2, &[("\"}", -0.2)]),
        ]
    }

    #[test]
    fn scores_follow_every_listed_path_to_a_label() {
        let tokens = spelled_in_fragments();
        let scores = label_log_probs("{ \"label\": \"Sports\"}", &tokens, &labels()).unwrap();
        let p = |l: f64| l.exp();
        // World: `W` at the first position.
        assert!((scores[0] as f64 - -5.0).abs() < 1e-5, "{scores:?}");
        // Sports: the whole token `Sports`, plus the generated path S·port·s·"}.
        let sports = p(-4.5) + p(-1.0 - 0.5 - 0.1 - 0.2);
        assert!((scores[1] as f64 - sports.ln()).abs() < 1e-5, "{scores:?}");
        // Business: `B`.
        assert!((scores[2] as f64 - -4.0).abs() < 1e-5, "{scores:?}");
        // Sci/Tech: `ci` after the generated `S`.
        assert!((scores[3] as f64 - (-1.0 - 2.0)).abs() < 1e-5, "{scores:?}");
    }

    #[test]
    fn a_label_nothing_leads_to_gets_the_least_listed_probability() {
        let mut tokens = spelled_in_fragments();
        tokens[5].top.retain(|(t, _)| t != "W");
        let scores = label_log_probs("{ \"label\": \"Sports\"}", &tokens, &labels()).unwrap();
        assert!((scores[0] as f64 - -5.5).abs() < 1e-5, "World is bounded by `Sh`: {scores:?}");
    }

    #[test]
    fn a_token_that_starts_several_labels_shares_its_mass() {
        let tokens = vec![
            token("{\"label\":\"", -0.1, &[]),
            token("World", -0.2, &[("World", -0.2), ("S", -2.0)]),
            token("\"}", 0.0, &[]),
        ];
        let scores = label_log_probs("{\"label\":\"World\"}", &tokens, &labels()).unwrap();
        // The tokens before the value are the same for every label: they are left out.
        let half = (0.5 * (-2.0f64).exp()).ln();
        assert!((scores[1] as f64 - half).abs() < 1e-5 && (scores[3] as f64 - half).abs() < 1e-5, "{scores:?}");
        assert!((scores[0] as f64 - -0.2).abs() < 1e-5, "{scores:?}");
    }

    #[test]
    fn a_token_that_also_opens_the_value_is_read_from_the_value_on() {
        // `"Business` is one token: candidates must start with its `"`.
        let tokens = vec![
            token("{\"label\":", -0.1, &[]),
            token("\"Business", -0.3, &[("\"Business", -0.3), ("\"World", -1.5), ("World", -0.9)]),
            token("\"}", 0.0, &[]),
        ];
        let scores = label_log_probs("{\"label\":\"Business\"}", &tokens, &labels()).unwrap();
        assert!((scores[0] as f64 - -1.5).abs() < 1e-5, "only `\"World` counts: {scores:?}");
        assert!((scores[2] as f64 - -0.3).abs() < 1e-5, "{scores:?}");
    }

    #[test]
    fn answers_that_cannot_be_read_say_why() {
        let tokens = spelled_in_fragments();
        assert_eq!(
            label_log_probs("{\"label\": \"World\"}", &tokens, &labels()),
            Err(NoScores::TokensDoNotSpellContent)
        );
        let tokens = vec![token("{}", -0.1, &[])];
        assert_eq!(label_log_probs("{}", &tokens, &labels()), Err(NoScores::NoLabelValue));
    }

    #[test]
    fn logprobs_are_read_from_a_chat_completion_choice() {
        let choice = serde_json::json!({
            "message": {"content": "{}"},
            "logprobs": {"content": [{"token": "{}", "logprob": -0.5, "bytes": null,
                "top_logprobs": [{"token": "{}", "logprob": -0.5, "bytes": null}, {"token": "[", "logprob": -2.0}]}]}
        });
        assert_eq!(parse(&choice), Some(vec![token("{}", -0.5, &[("{}", -0.5), ("[", -2.0)])]));
        assert_eq!(parse(&serde_json::json!({"message": {}})), None);
    }
}
