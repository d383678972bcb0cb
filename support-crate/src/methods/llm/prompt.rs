//! Prompts, the answer's JSON schema, and validation of what comes back.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::data::Task;

/// A chat message (OpenAI format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message { role: "system".into(), content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message { role: "user".into(), content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message { role: "assistant".into(), content: content.into() }
    }
}

/// Why an item has no label. Every one is counted, shown and scored as wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AnswerError {
    /// The request failed after its retries (timeouts, 429s, 5xx, connection).
    Request(String),
    /// The model refused.
    Refused(String),
    /// The answer was cut off by the token limit.
    Truncated(String),
    /// Not JSON, or JSON that breaks the schema (e.g. a label outside the enum).
    Invalid(String),
}

impl AnswerError {
    /// The kind, for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            AnswerError::Request(_) => "Request",
            AnswerError::Refused(_) => "Refused",
            AnswerError::Truncated(_) => "Truncated",
            AnswerError::Invalid(_) => "Invalid",
        }
    }
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerError::Request(e) => write!(f, "request failed: {e}"),
            AnswerError::Refused(e) => write!(f, "refused: {e}"),
            AnswerError::Truncated(e) => write!(f, "truncated: {e}"),
            AnswerError::Invalid(e) => write!(f, "invalid: {e}"),
        }
    }
}

/// `{"label": one of the class names}` (optionally a short rationale first).
pub fn answer_schema(labels: &[String], rationale: bool) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    if rationale {
        properties.insert("rationale".into(), json!({"type": "string", "maxLength": 200}));
        required.push("rationale");
    }
    properties.insert("label".into(), json!({"type": "string", "enum": labels}));
    required.push("label");
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// The label index of an answer, if it is a JSON object with a `label` among `labels`.
pub fn parse_answer(content: &str, labels: &[String]) -> Result<usize, AnswerError> {
    let value: Value = serde_json::from_str(content.trim())
        .map_err(|e| AnswerError::Invalid(format!("not JSON ({e}): {}", clip(content))))?;
    let label = value
        .get("label")
        .and_then(Value::as_str)
        .ok_or_else(|| AnswerError::Invalid(format!("no string \"label\": {}", clip(content))))?;
    labels
        .iter()
        .position(|l| l == label)
        .ok_or_else(|| AnswerError::Invalid(format!("label {label:?} is not one of {labels:?}")))
}

fn clip(s: &str) -> String {
    let clipped: String = s.chars().take(120).collect();
    if clipped.len() < s.len() {
        format!("{clipped}…")
    } else {
        clipped
    }
}

/// The system prompt: what is classified, each class with its description
/// where the task has one, and the answer's format.
pub fn instructions(task: &Task, labels: &[String]) -> String {
    let kind = &task.label_kind;
    format!(
        "You classify {} by {kind}. The {kind}s are:\n{}\nAnswer with a JSON object {{\"label\": \"<{kind}>\"}} \
         using exactly one of the {kind} names.",
        task.items,
        task.label_lines(labels).join("\n")
    )
}

/// The messages of one question: the system prompt, each solved example as
/// a user turn answered by the assistant in the schema, then the text.
pub fn conversation(system: &str, text: &str, labels: &[String], examples: &[crate::data::Example]) -> Vec<Message> {
    let mut messages = vec![Message::system(system)];
    for e in examples {
        messages.push(Message::user(e.text.clone()));
        messages.push(Message::assistant(serde_json::json!({"label": labels[e.label]}).to_string()));
    }
    messages.push(Message::user(text));
    messages
}

/// Zero-shot messages with the default instructions.
pub fn zero_shot(task: &Task, text: &str, labels: &[String]) -> Vec<Message> {
    conversation(&instructions(task, labels), text, labels, &[])
}

/// Few-shot messages with the default instructions.
pub fn few_shot(task: &Task, text: &str, labels: &[String], examples: &[crate::data::Example]) -> Vec<Message> {
    conversation(&instructions(task, labels), text, labels, examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["World", "Sports", "Business", "Sci/Tech"].map(String::from).to_vec()
    }

    #[test]
    fn the_ag_news_instructions_are_the_ones_its_cached_answers_were_asked_with() {
        assert_eq!(
            instructions(&Task::ag_news(), &labels()),
            "You classify news articles by topic. The topics are:\n\
             - World: international news, politics, conflicts, diplomacy\n\
             - Sports: sport events, teams, athletes, results\n\
             - Business: companies, markets, economy, finance, earnings\n\
             - Sci/Tech: science, technology, computing, the internet, space, health research\n\
             Answer with a JSON object {\"label\": \"<topic>\"} using exactly one of the topic names."
        );
        let tickets = Task { items: "support tickets".into(), label_kind: "team".into(), ..Task::named("helpdesk") };
        let text = instructions(&tickets, &["billing".to_string(), "network".to_string()]);
        assert!(
            text.starts_with("You classify support tickets by team. The teams are:\n- billing\n- network\n"),
            "{text}"
        );
        assert!(!text.contains("news"));
    }

    #[test]
    fn schema_has_the_labels_as_an_enum() {
        let s = answer_schema(&labels(), false);
        assert_eq!(s["properties"]["label"]["enum"][3], "Sci/Tech");
        assert_eq!(s["required"], json!(["label"]));
        assert_eq!(answer_schema(&labels(), true)["required"], json!(["rationale", "label"]));
    }

    #[test]
    fn answers_are_validated() {
        assert_eq!(parse_answer(r#" {"label": "Sports"} "#, &labels()), Ok(1));
        assert!(matches!(parse_answer(r#"{"label": "sport"}"#, &labels()), Err(AnswerError::Invalid(_))));
        assert!(matches!(parse_answer("Sports", &labels()), Err(AnswerError::Invalid(_))));
        assert!(matches!(parse_answer(r#"{"class": "Sports"}"#, &labels()), Err(AnswerError::Invalid(_))));
    }

    #[test]
    fn few_shot_puts_solved_examples_before_the_question() {
        let shots = vec![crate::data::Example::new(0, 1, "Cup final".into(), "A late goal.".into())];
        let m = few_shot(&Task::ag_news(), "Markets fall.", &labels(), &shots);
        let roles: Vec<&str> = m.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(m[2].content, r#"{"label":"Sports"}"#);
        assert_eq!(m[3].content, "Markets fall.");
        assert!(m[0].content.contains("Sci/Tech: science"));
    }
}
