//! Whole `slm-vs-llm llm` runs, the binary as a user runs it, against a
//! loopback OpenAI-compatible server:
//!
//! - with a recognisable API key and credentials in the base URL, at
//!   `RUST_LOG=debug`, the server echoing the key in error bodies and one
//!   item failing for good: not one byte of the key or the password may
//!   appear in the run's output, log, answer cache, results JSON or
//!   predictions CSV; a second run, whose answers are cached, asks only for
//!   the failed item;
//! - then against a server refusing the key (401): the run exits non-zero,
//!   says what to check, and leaves the earlier results as they were.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const KEY: &str = "sk-LEAKCHECK-7f3a9c";
const PASSWORD: &str = "pw-LEAKCHECK-42";
const LABELS: [&str; 4] = ["World", "Sports", "Business", "Sci/Tech"];

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The user message of a chat request.
fn question(stream: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let request: serde_json::Value = serde_json::from_slice(&body).ok()?;
    request["messages"].as_array()?.last()?["content"].as_str().map(str::to_string)
}

/// Answers each text with the label its first word names; "Broken" texts get
/// a 400 that echoes the key (final), every third request a 500 that echoes it
/// (retried).
fn server(requests: Arc<AtomicUsize>, refuse: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(text) = question(&stream) else { continue };
            let n = requests.fetch_add(1, Ordering::SeqCst);
            let echo = format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#);
            if refuse {
                respond(&mut stream, "401 Unauthorized", &echo);
            } else if text.contains("Broken") {
                respond(&mut stream, "400 Bad Request", &echo);
            } else if n % 3 == 2 {
                respond(&mut stream, "500 Internal Server Error", &echo);
            } else {
                let label = LABELS.iter().find(|l| text.contains(&format!("{l} news"))).unwrap_or(&"World");
                let body = serde_json::json!({
                    "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": format!("{{\"label\": \"{label}\"}}")}}],
                    "usage": {"prompt_tokens": 30, "completion_tokens": 6}
                });
                respond(&mut stream, "200 OK", &body.to_string());
            }
        }
    });
    format!("http://user:{PASSWORD}@127.0.0.1:{port}/v1")
}

/// `rows` texts, each naming its label; with `broken`, the fourth fails for good.
fn write_csv(path: &Path, rows: usize, offset: usize, broken: bool) {
    let mut csv = String::from("text,label\n");
    for i in 0..rows {
        let label = LABELS[i % 4];
        let broken = if broken && i == 3 { " Broken" } else { "" };
        csv.push_str(&format!("\"{label} news item {} with some words{broken}\",{label}\n", i + offset));
    }
    std::fs::write(path, csv).unwrap();
}

/// Every file under `dir`, with its contents.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_run_leaks_no_secret_and_a_refused_run_fails_keeping_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    write_csv(&train, 48, 0, false);
    write_csv(&test, 16, 1000, true);
    let (out, cache) = (dir.path().join("results"), dir.path().join("cache"));
    let requests = Arc::new(AtomicUsize::new(0));
    let url = server(requests.clone(), false);
    let run = |url: &str, cache: &Path| {
        Command::new(env!("CARGO_BIN_EXE_slm-vs-llm"))
            .args(["llm", "--train"])
            .arg(&train)
            .arg("--test")
            .arg(&test)
            .args(["--validation-fraction", "0.25", "--demonstrations", "none,fixed:1", "--model", "leak-test"])
            .args(["--base-url", url, "--timeout", "5", "--out"])
            .arg(&out)
            .env("OPENAI_API_KEY", KEY)
            .env("SLM_CACHE_DIR", cache)
            .env("SLM_PROJECT_DIR", dir.path())
            .env("RUST_LOG", "debug")
            .env_remove("OPENAI_BASE_URL")
            .output()
            .unwrap()
    };
    let first = run(&url, &cache);
    let log = [first.stdout.as_slice(), first.stderr.as_slice()].concat();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&log));
    let asked = requests.load(Ordering::SeqCst);
    assert!(asked > 0);
    let mut everything = vec![("output and log".to_string(), log)];
    everything.extend(files(&out));
    everything.extend(files(&cache));
    assert!(everything.iter().any(|(name, _)| name.ends_with(".predictions.csv")), "no predictions written");
    assert!(everything.iter().any(|(name, _)| name.contains("cache") && name.ends_with(".cache")), "no answer cache");
    for (name, bytes) in &everything {
        assert!(!contains(bytes, KEY), "the key is in {name}");
        assert!(!contains(bytes, PASSWORD), "the URL's password is in {name}");
    }
    // The failed item's reason is kept, masked.
    let records = files(&out);
    assert!(records.iter().any(|(_, bytes)| contains(bytes, "***")), "the failed item's masked error is not kept");

    // Every answer is cached now: a re-run asks only for what failed.
    let second = run(&url, &cache);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let again = requests.load(Ordering::SeqCst) - asked;
    assert!(again <= 2, "the re-run made {again} requests");

    // A server that refuses the key, nothing cached: a loud failure that keeps the results above.
    let before = files(&out);
    let refused = run(&server(Arc::new(AtomicUsize::new(0)), true), &dir.path().join("empty-cache"));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a refused run exited 0");
    assert!(stderr.contains("401") && stderr.contains("OPENAI_API_KEY"), "{stderr}");
    assert!(!stderr.contains(KEY), "the key leaked: {stderr}");
    assert_eq!(files(&out), before, "a failed run changed the results");
}
