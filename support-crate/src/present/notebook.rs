//! Notebook support: rich output for the evcxr kernel, fail-fast panics,
//! and the check that an executed notebook holds no errors.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{AnyValue, DataFrame};

pub use crate::plot::emit;

/// A table that a notebook cell shows as HTML.
#[derive(Debug, Clone)]
pub struct Table(pub DataFrame);

impl Table {
    /// evcxr's display hook.
    pub fn evcxr_display(&self) {
        emit("text/html", &html_table(&self.0));
    }
}

/// Markdown (generated sentences, a Markdown table) that a cell shows rendered.
#[derive(Debug, Clone)]
pub struct Markdown(pub String);

impl Markdown {
    /// evcxr's display hook: rendered Markdown, and the text itself as the plain form.
    pub fn evcxr_display(&self) {
        let text = from_notebooks(&self.0);
        emit("text/plain", &text);
        emit("text/markdown", &text);
    }
}

/// The report's text links the project's files from its root
/// (`assets/break_even.svg`); a notebook lives in `notebooks/`, so its links
/// go one level up.
fn from_notebooks(markdown: &str) -> String {
    ["assets/", "results/", "docs/", "support-crate/"]
        .iter()
        .fold(markdown.to_string(), |text, dir| text.replace(&format!("]({dir}"), &format!("](../{dir}")))
}

/// What a cell shows when the results it draws may be missing: the chart or
/// text, or a note on how to make them.
#[derive(Debug, Clone)]
pub enum Shown {
    Chart(crate::plot::Svg),
    Text(Markdown),
    Nothing,
}

impl Shown {
    /// evcxr's display hook.
    pub fn evcxr_display(&self) {
        match self {
            Shown::Chart(svg) => svg.evcxr_display(),
            Shown::Text(text) => text.evcxr_display(),
            Shown::Nothing => {}
        }
    }
}

impl From<crate::plot::Svg> for Shown {
    fn from(svg: crate::plot::Svg) -> Self {
        Shown::Chart(svg)
    }
}

impl From<Markdown> for Shown {
    fn from(text: Markdown) -> Self {
        Shown::Text(text)
    }
}

/// `value` shown, or `note` (nothing when empty) when there is none.
pub fn or_note<T: Into<Shown>>(value: Option<T>, note: &str) -> Shown {
    match value {
        Some(v) => v.into(),
        None if note.is_empty() => Shown::Nothing,
        None => Shown::Text(Markdown(note.to_string())),
    }
}

impl From<DataFrame> for Table {
    fn from(df: DataFrame) -> Self {
        Table(df)
    }
}

fn cell_text(value: AnyValue) -> String {
    match value {
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Null => String::new(),
        AnyValue::Float64(x) => format_float(x),
        AnyValue::Float32(x) => format_float(x as f64),
        other => other.to_string(),
    }
}

fn format_float(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let digits = if x.abs() >= 100.0 { 1 } else { 3 };
        let s = format!("{x:.digits$}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Longest text shown in a table cell; longer text is cut, and the whole of
/// it shows when the pointer rests on the cell.
pub const CELL_CHARS: usize = 160;

/// Render a DataFrame as a self-contained HTML table: numbers right-aligned,
/// text left-aligned and cut at [`CELL_CHARS`] characters (the full text in
/// the cell's `title`).
pub fn html_table(df: &DataFrame) -> String {
    let mut html = String::from("<table class=\"dataframe\">\n<thead><tr>");
    for column in df.columns() {
        let align = if column.dtype().is_primitive_numeric() { "right" } else { "left" };
        let _ = write!(html, "<th style=\"text-align:{align}\">{}</th>", escape(column.name()));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for row in 0..df.height() {
        html.push_str("<tr>");
        for column in df.columns() {
            let value = column.get(row).map(cell_text).unwrap_or_default();
            if column.dtype().is_primitive_numeric() {
                let _ = write!(html, "<td style=\"text-align:right\">{}</td>", escape(&value));
            } else if value.chars().count() > CELL_CHARS {
                let cut: String = value.chars().take(CELL_CHARS - 1).collect();
                let (cut, full) = (escape(cut.trim_end()), escape(&value).replace('"', "&quot;"));
                let _ = write!(html, "<td style=\"text-align:left\" title=\"{full}\">{cut}…</td>");
            } else {
                let _ = write!(html, "<td style=\"text-align:left\">{}</td>", escape(&value));
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table>");
    html
}

/// Set a notebook up: log (`RUST_LOG`, default info) to stdout, where it
/// shows as ordinary output, and, when `SLM_NOTEBOOK_STRICT` is set (as the
/// notebook runner does), make a panic end the kernel with a non-zero status
/// so an unattended run cannot pass over it. Safe to call more than once.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .without_time()
            .try_init();
        if std::env::var_os("SLM_NOTEBOOK_STRICT").is_some() {
            let default_hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                default_hook(info);
                eprintln!("SLM_NOTEBOOK_STRICT: a cell panicked; stopping the kernel.");
                std::process::exit(101);
            }));
        }
    });
}

/// The error outputs of an executed notebook. An empty list means it ran clean.
///
/// Error cells count, and so does any text on stderr: evcxr reports a panic
/// and an error returned by a cell's `?` only there (nbconvert passes over
/// both), and the crate's notebooks log to stdout, so stderr stays empty in
/// a clean run.
pub fn errors_in_executed(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let nb: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a notebook (invalid JSON)", path.display()))?;
    let cells = nb["cells"].as_array().with_context(|| format!("{}: no \"cells\" list", path.display()))?;
    let mut errors = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        for output in cell["outputs"].as_array().into_iter().flatten() {
            let text = joined(&output["text"]);
            let problem = match output["output_type"].as_str() {
                Some("error") => Some(format!("{}: {}", joined(&output["ename"]), joined(&output["evalue"]))),
                Some("stream") if output["name"] == "stderr" && !text.trim().is_empty() => Some(text),
                _ => None,
            };
            if let Some(problem) = problem {
                errors.push(format!("cell {}: {}", i + 1, problem.trim()));
            }
        }
    }
    Ok(errors)
}

/// Problems of a notebook page as a browser rendered it (`dom`: the DOM that
/// headless Chromium dumps after loading the exported HTML), against the
/// executed notebook it came from: every chart present as an image with a
/// real alt text, and no error or stderr output shown. Empty: the page is fine.
pub fn problems_in_rendered_page(dom: &str, executed: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(executed).with_context(|| format!("reading {}", executed.display()))?;
    let nb: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a notebook", executed.display()))?;
    let charts = nb["cells"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|cell| cell["outputs"].as_array().into_iter().flatten())
        .filter(|output| output["data"].get("image/svg+xml").is_some())
        .count();
    let mut problems = Vec::new();
    if !dom.contains("jp-Notebook") {
        problems.push("the page has no notebook in it (did it load?)".to_string());
    }
    let images: Vec<&str> = dom.split("<img").skip(1).map(|tag| &tag[..tag.find('>').unwrap_or(tag.len())]).collect();
    let svg_images = images.iter().filter(|tag| tag.contains("data:image/svg+xml")).count();
    if svg_images != charts {
        problems.push(format!("{svg_images} chart images on the page, {charts} in the notebook"));
    }
    for tag in &images {
        let alt = tag.split("alt=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("");
        if alt.trim().is_empty() || alt.starts_with("No description") {
            problems.push(format!("an image without alt text: <img{}>", &tag[..tag.len().min(80)]));
        }
    }
    // nbconvert marks stderr streams and error tracebacks alike with this attribute.
    if dom.contains("data-mime-type=\"application/vnd.jupyter.stderr\"") {
        problems.push("the page shows error output (stderr or a traceback)".to_string());
    }
    Ok(problems)
}

fn joined(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Array(parts) => parts.iter().filter_map(|p| p.as_str()).collect(),
        serde_json::Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::df;

    #[test]
    fn links_from_the_project_root_point_up_from_the_notebooks() {
        let text = "Cost ([`assets/break_even.svg`](assets/break_even.svg)), [site](https://x.org/assets/a)";
        assert_eq!(
            from_notebooks(text),
            "Cost ([`assets/break_even.svg`](../assets/break_even.svg)), [site](https://x.org/assets/a)"
        );
    }

    #[test]
    fn html_table_escapes_and_formats() {
        let df = df!("class" => ["<World>", "Sports"], "share" => [0.25f64, 0.75], "n" => [10i64, 30]).unwrap();
        let html = html_table(&df);
        assert!(
            html.contains("<th style=\"text-align:left\">class</th><th style=\"text-align:right\">share</th>"),
            "{html}"
        );
        assert!(html.contains("<td style=\"text-align:left\">&lt;World&gt;</td>"), "{html}");
        assert!(html.contains(">0.25</td>") && html.contains(">30</td>"), "{html}");
    }

    #[test]
    fn long_text_is_cut_with_the_whole_in_the_title() {
        let long = format!("\"Quoted\" {}", "word ".repeat(60));
        let html = html_table(&df!("text" => [long.as_str()]).unwrap());
        let shown = &html[html.rfind("\">").unwrap() + 2..html.rfind("</td>").unwrap()];
        assert!(shown.ends_with('…') && shown.chars().count() <= CELL_CHARS, "{shown}");
        assert!(html.contains("title=\"&quot;Quoted&quot; word word"), "{html}");
    }

    #[test]
    fn a_rendered_page_must_show_every_chart_with_alt_text_and_no_errors() {
        let nb = notebook_with(serde_json::json!([
            {"output_type": "execute_result", "data": {"image/svg+xml": "<svg/>", "text/plain": "A chart"}}
        ]));
        let good = "<div class=\"jp-Notebook\"><img src=\"data:image/svg+xml;base64,AA\" alt=\"A chart\"></div>";
        assert_eq!(problems_in_rendered_page(good, nb.path()).unwrap(), Vec::<String>::new());
        let no_alt = good.replace("alt=\"A chart\"", "alt=\"No description has been provided for this image\"");
        assert_eq!(problems_in_rendered_page(&no_alt, nb.path()).unwrap().len(), 1);
        let missing = "<div class=\"jp-Notebook\"></div>";
        assert!(problems_in_rendered_page(missing, nb.path()).unwrap()[0].contains("0 chart images"));
        let stderr = format!("{good}<div data-mime-type=\"application/vnd.jupyter.stderr\">boom</div>");
        assert_eq!(problems_in_rendered_page(&stderr, nb.path()).unwrap().len(), 1);
    }

    fn notebook_with(outputs: serde_json::Value) -> tempfile::NamedTempFile {
        let nb = serde_json::json!({"cells": [
            {"cell_type": "markdown", "source": ["# t"]},
            {"cell_type": "code", "source": ["1"], "outputs": outputs}
        ]});
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), nb.to_string()).unwrap();
        file
    }

    #[test]
    fn finds_error_outputs() {
        let panic = notebook_with(serde_json::json!([
            {"output_type": "stream", "name": "stderr", "text": ["thread '<unnamed>' panicked at src/lib.rs:1:1:\n", "boom\n"]}
        ]));
        let errors = errors_in_executed(panic.path()).unwrap();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("cell 2: thread"), "{errors:?}");

        let question_mark = notebook_with(serde_json::json!([
            {"output_type": "stream", "name": "stderr", "text": ["invalid digit found in string\n"]}
        ]));
        assert_eq!(errors_in_executed(question_mark.path()).unwrap(), vec!["cell 2: invalid digit found in string"]);

        let error_cell = notebook_with(serde_json::json!([{"output_type": "error", "ename": "Error", "evalue": "x"}]));
        assert_eq!(errors_in_executed(error_cell.path()).unwrap(), vec!["cell 2: Error: x"]);
    }

    #[test]
    fn clean_notebook_passes() {
        let clean = notebook_with(serde_json::json!([
            {"output_type": "stream", "name": "stderr", "text": ["\n"]},
            {"output_type": "stream", "name": "stdout", "text": ["Error: printed on purpose\n"]},
            {"output_type": "execute_result", "data": {"text/plain": ["Error: not really, just text"]}}
        ]));
        assert!(errors_in_executed(clean.path()).unwrap().is_empty());
    }
}
